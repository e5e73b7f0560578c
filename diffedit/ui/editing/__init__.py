"""The editing room: the Markdown editor, its highlighter, find bar, outline, preview and themes."""
