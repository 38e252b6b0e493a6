"""The shipped study definitions, one TOML file per named study (read by `search.study.loader`)."""
