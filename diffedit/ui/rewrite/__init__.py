"""The rewrite room: one rewrite's controller, its in-place canvas, bars, history, model picker, status."""
