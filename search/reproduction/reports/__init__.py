"""One module per source report (seed000-seed004), each `presets()`: its published rows as presets."""
