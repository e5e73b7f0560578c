"""diffedit: a Markdown editor that rewrites text by diffusion."""

__version__ = "0.1.0"
