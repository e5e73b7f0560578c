"""Icons for the actions, drawn from qtawesome's fonts (Material Design Icons: Apache-2.0 / SIL OFL 1.1;
Font Awesome Free: SIL OFL 1.1 / MIT) in the theme's text colour, so they follow light and dark."""

from __future__ import annotations

from collections.abc import Iterable

import qtawesome
from PySide6.QtGui import QAction, QColor

from diffedit.ui.editing.theme import Theme

ICON_LICENCE = (
    "Icons: qtawesome (MIT) with Material Design Icons (Apache-2.0, font under SIL OFL 1.1) "
    "and Font Awesome Free (icons CC BY 4.0, font SIL OFL 1.1, code MIT)."
)

# action objectName -> qtawesome icon name
ACTION_ICONS = {
    "actNew": "mdi6.file-outline",
    "actOpen": "mdi6.folder-open-outline",
    "actSave": "mdi6.content-save-outline",
    "actSaveAs": "mdi6.content-save-edit-outline",
    "actQuit": "mdi6.exit-to-app",
    "actUndo": "mdi6.undo",
    "actRedo": "mdi6.redo",
    "actFind": "mdi6.magnify",
    "actReplace": "mdi6.find-replace",
    "actFindNext": "mdi6.arrow-down",
    "actFindPrev": "mdi6.arrow-up",
    "actRewrite": "mdi6.creation",
    "actInstruct": "mdi6.message-text-outline",
    "actStop": "mdi6.stop-circle-outline",
    "actChooseModel": "mdi6.folder-cog-outline",
    "actDemoModel": "mdi6.package-variant",
    "actPreview": "mdi6.eye-outline",
    "actDark": "mdi6.theme-light-dark",
    "actWrap": "mdi6.wrap",
    "actPreferences": "mdi6.cog-outline",
    "actShortcuts": "mdi6.keyboard-outline",
    "actAbout": "mdi6.information-outline",
}


def apply_icons(actions: Iterable[QAction], theme: Theme) -> None:
    """Give every known action its icon in ``theme``'s colours (called again when the theme changes)."""
    color, disabled = QColor(theme.text), QColor(theme.muted)
    for action in actions:
        name = ACTION_ICONS.get(action.objectName())
        if name:
            action.setIcon(qtawesome.icon(name, color=color, color_disabled=disabled))
