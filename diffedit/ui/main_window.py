"""The main window: builds the rooms' parts and wires them; the work is done in the rooms.

editing/  the editor, find bar, preview, outline and word count, themes
files/    ``DocumentController``: path, encoding, read-only, disk watcher, saves, autosave, recovery
rewrite/  ``RewriteController`` and its canvas, bars, history dock, model picker, status
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.drafts import sections
from diffedit.document.outline import Summary
from diffedit.document.recovery import RecoveryEntry
from diffedit.document.textpos import to_utf16
from diffedit.engine.types import GenerationSettings
from diffedit.resources import resources_dir, templates
from diffedit.settings import Settings
from diffedit.ui.dialogs import SERVER_KEYS, PreferencesDialog, about_box, shortcuts_dialog
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.editing.find_bar import FindBar
from diffedit.ui.editing.outline_dock import OutlineDock
from diffedit.ui.editing.preview import PreviewPane, ScrollSync
from diffedit.ui.editing.summary import SummaryRefresher
from diffedit.ui.editing.theme import apply_theme, resolve_theme
from diffedit.ui.files.document_controller import DocumentController
from diffedit.ui.icons import apply_icons
from diffedit.ui.notice_bar import NoticeBar
from diffedit.ui.rewrite.alternatives import DEFAULT_ALTERNATIVES, AlternativesDialog
from diffedit.ui.rewrite.bars import FREE_FORM_TIP, ReviewBar, RewriteBar, no_instruction_note
from diffedit.ui.rewrite.confidence import ConfidenceView
from diffedit.ui.rewrite.controller import POLISH_THRESHOLD, RewriteController, RunOptions
from diffedit.ui.rewrite.draft_bar import DraftBar, DraftDialog
from diffedit.ui.rewrite.draft_controller import DraftController
from diffedit.ui.rewrite.history_dock import HistoryDock
from diffedit.ui.rewrite.model_picker import ModelPicker
from diffedit.ui.rewrite.models_dialog import ModelsDialog
from diffedit.ui.rewrite.status import DEMO_EXPLAINED, StatusPanel
from diffedit.worker import EngineBridge

RESOURCES = resources_dir()
WELCOME_FALLBACK = "# Welcome to diffedit\n\nSelect a paragraph and press Ctrl+R to rewrite it in place.\n"
Shortcut = QKeySequence | QKeySequence.StandardKey | str


def welcome_text() -> str:
    try:
        return (RESOURCES / "welcome.md").read_text(encoding="utf-8")
    except OSError:
        return WELCOME_FALLBACK


NOTHING_SELECTED = "Nothing to rewrite here: select a paragraph (or put the caret in one)."


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings | None = None,
        bridge: EngineBridge | None = None,
        autoload_model: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        self.theme = resolve_theme(self.settings.theme)
        self.bridge = bridge or EngineBridge(parent=self)
        self._option_tips: dict[str, str] = {}  # the model options' own tooltips, before any device note
        self._restored_windows: list[MainWindow] = []  # opened by a recovery restore; kept alive here

        # editing
        self.editor = MarkdownEditor(self, self.theme)
        self.editor.set_editor_font(self.settings.font_family, self.settings.font_size)
        self.editor.set_word_wrap(self.settings.word_wrap)
        self.editor.set_line_width(self.settings.line_width)
        self.find_bar = FindBar(self.editor, self)
        self.preview = PreviewPane(
            self.editor.exact_text, self.theme, self, anchor=lambda: self.editor.textCursor().position()
        )
        self.outline_dock = OutlineDock(self)
        self.summary = SummaryRefresher(self.editor.exact_text, self.outline_dock.isVisible, self)
        # rewrite
        self.rewrite_bar = RewriteBar(self)
        self.rewrite_bar.set_values(self.settings.steps, self.settings.strength)
        self.review_bar = ReviewBar(self)
        self.history_dock = HistoryDock(self)
        self.status = StatusPanel(self.statusBar())
        self.controller = RewriteController(self.editor, self.bridge, self)
        self.drafts = DraftController(self.controller, self)
        self.draft_bar = DraftBar(self)
        self.confidence = ConfidenceView(self.editor, self.bridge, self)
        self.alternatives_dialog: AlternativesDialog | None = None
        self.model = ModelPicker(self.settings, self.bridge, self)
        self._pending_key_change = False  # the Preferences just stored a server key in the keyring
        # files
        self.documents = DocumentController(self.editor, self.settings, self)
        self.notice_bar = NoticeBar(self)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.editor)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        editing = QWidget(self)
        lay = QVBoxLayout(editing)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.find_bar)
        lay.addWidget(self.splitter, 1)
        # The docks live in an inner main window so the bars below span the whole window, not only the
        # editor's column between the docks, and showing a bar never moves the docks.
        self.panels = QMainWindow(self)
        self.panels.setWindowFlags(Qt.WindowType.Widget)
        self.panels.setObjectName("panels")
        self.panels.setCentralWidget(editing)
        self.panels.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.outline_dock)
        self.panels.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        central = QWidget(self)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.panels, 1)
        for bar in (self.notice_bar, self.draft_bar, self.review_bar, self.rewrite_bar):
            lay.addWidget(bar)
        self.setCentralWidget(central)
        self._build_actions()
        self._connect()

        self.preview.setVisible(self.settings.show_preview)
        self.outline_dock.setVisible(self.settings.show_outline)
        self.history_dock.setVisible(self.settings.show_history)
        self.resize(1100, 750)
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(self.settings.window_geometry.encode()))
        self.documents.new_document(welcome_text())
        if autoload_model:
            self.model.load()

    # -- construction ------------------------------------------------------------------------------
    def _action(
        self,
        text: str,
        slot: Callable[..., Any],
        shortcut: Shortcut | None = None,
        name: str = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        d, f, m = self.documents, self.find_bar, self.model
        self.act_new = self._action("&New", lambda: d.new_document(), K.New, "actNew")
        self.act_open = self._action("&Open…", lambda: d.open_dialog(), K.Open, "actOpen")
        self.act_save = self._action("&Save", lambda: d.save(), K.Save, "actSave")
        self.act_save_as = self._action("Save &As…", lambda: d.save_as(), K.SaveAs, "actSaveAs")
        self.act_quit = self._action("&Quit", self.close, K.Quit, "actQuit")
        self.act_undo = self._action("&Undo", self.editor.undo, K.Undo, "actUndo")
        self.act_redo = self._action("&Redo", self.editor.redo, "Ctrl+Shift+Z", "actRedo")
        self.act_find = self._action("&Find…", lambda: f.open(False), K.Find, "actFind")
        self.act_replace = self._action("&Replace…", lambda: f.open(True), "Ctrl+H", "actReplace")
        self.act_find_next = self._action("Find &Next", f.find_next, K.FindNext, "actFindNext")
        self.act_find_prev = self._action("Find &Previous", f.find_previous, K.FindPrevious, "actFindPrev")
        self.act_rewrite = self._action("&Rewrite Selection", self.rewrite, "Ctrl+R", "actRewrite")
        self.act_rewrite.setToolTip("Rewrite the selected blocks in place (Ctrl+R)")
        self.act_instruct = self._action(
            "Rewrite with &Instruction…", self.rewrite_bar.focus_instruction, "Ctrl+I", "actInstruct"
        )
        self.act_draft = self._action("&Draft Sections…", self.draft_sections, None, "actDraft")
        self.act_draft.setToolTip("Fill an outline's empty sections, one block (one undo step) at a time")
        self.act_alternatives = self._action(
            f"&Alternatives ({DEFAULT_ALTERNATIVES})…", self.alternatives, "Ctrl+Alt+R", "actAlternatives"
        )
        self.act_alternatives.setToolTip("Several candidates of the selection side by side; pick one")
        self.act_stop = self._action("&Stop", self.stop_run, None, "actStop")
        self.act_keep_words = self._action(
            "&Keep Selected Words", self.controller.keeps.toggle_selection, "Ctrl+K", "actKeepWords"
        )
        self.act_polish = self._action("&Polish Weak Words", self.polish, None, "actPolish")
        self.act_stop.setEnabled(False)
        self.act_free_form = self._action("&Free Form", self._set_free_form, None, "actFreeForm", True)
        self.act_free_form.setToolTip(FREE_FORM_TIP)
        self.act_free_form.setChecked(self.settings.free_form)
        self.rewrite_bar.free_form.setChecked(self.settings.free_form)
        self.rewrite_bar.free_form.toggled.connect(self.act_free_form.setChecked)  # the action sets it
        self.act_models = self._action("&Models…", self.open_models, None, "actModels")
        self.act_models.setToolTip("The models on this computer, what each needs, and downloads")
        self.act_choose_model = self._action("Choose &Model Folder…", m.choose_folder, None, "actChooseModel")
        self.act_demo_model = self._action(
            "Use the &Bundled Demo Model", m.use_demo_model, None, "actDemoModel"
        )
        self.act_fp8 = self._action(
            "&FP8 Experts (Half the Memory)", lambda on: m.set_option("fp8", on), None, "actFp8", True
        )
        self.act_fp8.setToolTip(
            "Load the model's MoE experts in FP8: half their memory, fastest on Hopper GPUs; "
            "changes the output slightly"
        )
        self.act_compile = self._action(
            "&Compile the Decoder Step",
            lambda on: m.set_option("compile_step", on),
            None,
            "actCompileStep",
            True,
        )
        self.act_compile.setToolTip(
            "Fuse the decoder step with torch.compile: the model takes longer to load once, then rewrites "
            "faster; falls back to the uncompiled step where the compiler is missing"
        )
        self.act_fp8.setChecked(self.settings.fp8)
        self.act_compile.setChecked(self.settings.compile_step)
        self.act_preview = self._action("&Preview", self._set_preview, "Ctrl+Shift+P", "actPreview", True)
        self.act_outline = self.outline_dock.toggleViewAction()
        self.act_history = self.history_dock.toggleViewAction()
        self.act_dark = self._action("&Dark Theme", self._set_dark, None, "actDark", True)
        self.act_wrap = self._action("&Word Wrap", self._set_wrap, None, "actWrap", True)
        self.act_preview.setChecked(self.settings.show_preview)
        self.act_sync_scroll = self._action("&Sync Scrolling", self._set_sync_scroll, None, "actSync", True)
        self.act_sync_scroll.setToolTip(
            "Scrolling the preview scrolls the editor too (the preview follows always)"
        )
        self.act_sync_scroll.setChecked(self.settings.sync_scroll)
        self.act_dark.setChecked(self.theme.name == "dark")
        self.act_wrap.setChecked(self.settings.word_wrap)
        self.act_preferences = self._action(
            "&Preferences…", self.open_preferences, K.Preferences, "actPreferences"
        )
        if self.act_preferences.shortcut().isEmpty():
            self.act_preferences.setShortcut(QKeySequence("Ctrl+,"))
        self.act_shortcuts = self._action("&Keyboard Shortcuts", self.show_shortcuts, None, "actShortcuts")
        self.act_about = self._action("&About diffedit", self.show_about, None, "actAbout")
        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.setContext(Qt.ShortcutContext.WindowShortcut)
        esc.activated.connect(self.escape)

        bar = self.menuBar()
        menu = bar.addMenu("&File")
        menu.addActions([self.act_new, self.act_open])
        self.template_menu = QMenu("New from &Template", self)
        for name, path in templates():
            action = self.template_menu.addAction(name)
            action.triggered.connect(lambda _checked=False, p=path: self.new_from_template(p))
        menu.addMenu(self.template_menu)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(lambda: d.fill_recent_menu(self.recent_menu))
        menu.addMenu(self.recent_menu)
        menu.addActions([self.act_save, self.act_save_as])
        menu.addSeparator()
        menu.addAction(self.act_quit)
        menu = bar.addMenu("&Edit")
        menu.addActions([self.act_undo, self.act_redo])
        menu.addSeparator()
        menu.addActions([self.act_find, self.act_replace, self.act_find_next, self.act_find_prev])
        menu.addSeparator()
        menu.addAction(self.act_preferences)
        menu = bar.addMenu("&Rewrite")
        menu.setToolTipsVisible(True)  # the model options say why they are off
        menu.addActions([self.act_rewrite, self.act_instruct, self.act_alternatives, self.act_draft])
        menu.addActions([self.act_stop])
        menu.addSeparator()
        menu.addActions([self.act_keep_words, self.act_polish])
        menu.addAction(self.act_free_form)
        menu.addSeparator()
        menu.addActions([self.act_models, self.act_choose_model, self.act_demo_model])
        menu.addSeparator()
        menu.addActions([self.act_fp8, self.act_compile])
        menu = bar.addMenu("&View")
        menu.setToolTipsVisible(True)
        menu.addActions([self.act_preview, self.act_sync_scroll])
        menu.addActions([self.act_outline, self.act_history, self.act_dark, self.act_wrap])
        menu.addMenu(self.confidence.menu)
        menu = bar.addMenu("&Help")
        menu.addActions([self.act_shortcuts, self.act_about])

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_rewrite, self.act_stop])
        tb.addSeparator()
        tb.addAction(self.act_preview)
        self.addToolBar(tb)
        apply_icons(self.actions(), self.theme)
        self.editor.context_actions = [self.act_rewrite, self.act_instruct]

    def _connect(self) -> None:
        doc = self.editor.document()
        doc.contentsChange.connect(self._on_contents_change)
        doc.modificationChanged.connect(lambda _m: self._update_title())
        self.editor.cursorPositionChanged.connect(
            lambda: self.preview.follow(self.editor.textCursor().position())
        )
        self.scroll_sync = ScrollSync(self.editor, self.preview, both_ways=lambda: self.settings.sync_scroll)
        self.outline_dock.headingActivated.connect(self._jump_to_offset)
        self.summary.ready.connect(self._show_summary)
        # rewrite
        c = self.controller
        self.history_dock.entrySelected.connect(c.jump_to)
        self.history_dock.replayRequested.connect(c.replay)
        self.rewrite_bar.rewriteRequested.connect(self.rewrite)
        self.rewrite_bar.stopRequested.connect(self.stop_run)
        self.drafts.notice.connect(self.notice_bar.notify)
        self.drafts.stateChanged.connect(self.draft_bar.show_state)
        self.draft_bar.skipRequested.connect(self.drafts.skip)
        self.draft_bar.redraftRequested.connect(self.drafts.redraft)
        self.draft_bar.stopRequested.connect(self.stop_run)
        self.review_bar.keepRequested.connect(c.keep)
        self.review_bar.undoRequested.connect(c.undo)
        self.review_bar.retryRequested.connect(c.try_again)
        c.notice.connect(self.notice_bar.notify)
        c.progress.connect(self.status.set_progress)
        c.loading.connect(self.status.set_loading)
        c.runningChanged.connect(self._on_running_changed)
        c.committed.connect(self.history_dock.add_entry)
        c.reviewOffered.connect(self.review_bar.offer)
        c.reviewClosed.connect(self.review_bar.hide)
        c.entryUndone.connect(self.history_dock.set_undone)
        self.editor.undoRedone.connect(lambda redo: None if redo else self.status.clear_run())
        self.model.aboutToReload.connect(self.drafts.stop)
        self.model.aboutToReload.connect(lambda: c.stop(quiet=True))
        self.model.aboutToReload.connect(lambda: self.status.set_demo(False))
        self.model.status.connect(self.status.set_model)
        b = self.bridge
        b.modelLoading.connect(self.status.set_model)
        b.modelLoaded.connect(self._on_model_loaded)
        b.modelLoaded.connect(lambda _name, dev: self._fit_options_to_device(dev))
        b.modelFailed.connect(self._on_model_failed)
        # files
        d = self.documents
        d.notice.connect(self.notice_bar.notify)
        d.aboutToReplace.connect(self.drafts.stop)
        d.aboutToReplace.connect(c.quiet)
        d.replaced.connect(self._on_document_replaced)
        d.pathChanged.connect(self._update_title)
        d.restoreElsewhere.connect(self._restore_in_new_window)
        c.aboutToCommit.connect(d.rewrite_about_to_commit)
        c.committed.connect(lambda _entry: d.save_recovery_now())  # a commit is autosaved at once
        c.kept.connect(d.rewrite_kept)
        self.confidence.status.connect(lambda line: self.notice_bar.notify("info", line))
        c.runningChanged.connect(self.confidence.on_rewrite_running)

    # -- rewrite -----------------------------------------------------------------------------------
    def run_options(self) -> RunOptions:
        bar = self.rewrite_bar
        return RunOptions(
            bar.instruction.text(), bar.strength_value(), bar.steps.value(), free_form=self.settings.free_form
        )

    def rewrite(self) -> bool:
        self.model.load()  # a window started without a model loads it on first use
        options = self.run_options()
        started = self.controller.start(options)
        instruction = options.instruction.strip()
        notes = [self._demo_notice_once()] if started else []
        if started and instruction and self.bridge.state == "ready" and not self.bridge.follows_instructions:
            notes.append(f"“{instruction}” is not used: {no_instruction_note(self.bridge.model_name)}.")
        if any(notes):
            self.notice_bar.notify("info", " ".join(n for n in notes if n))
        return started

    def draft_sections(self) -> DraftDialog:
        """Ask which sections to draft, then draft them (Rewrite > Draft Sections)."""
        dialog = DraftDialog(sections(self.editor.exact_text()), self)

        def go() -> None:
            self.model.load()
            if self.drafts.start(dialog.options(self.rewrite_bar.steps.value())) and (
                note := self._demo_notice_once()
            ):
                self.notice_bar.notify("info", note)

        dialog.accepted.connect(go)
        dialog.open()
        return dialog

    def new_from_template(self, path: Path) -> bool:
        """File > New from Template: the outline as a new, untitled document."""
        return self.documents.new_document(path.read_text(encoding="utf-8"))

    def stop_run(self) -> None:
        """Stop a draft (its committed blocks stay) or a rewrite (the text is unchanged)."""
        if not self.drafts.stop():
            self.controller.stop()

    def polish(self) -> bool:
        """Rewrite > Polish Weak Words: re-write only the tokens the model finds unlikely."""
        self.model.load()
        return self.controller.start(dataclasses.replace(self.run_options(), polish=POLISH_THRESHOLD))

    def alternatives(self, count: int = DEFAULT_ALTERNATIVES) -> AlternativesDialog | None:
        """Rewrite > Alternatives: candidates of the selection side by side (a modal dialog)."""
        self.model.load()
        self.controller.stop(quiet=True)
        options = self.run_options()
        try:
            settings = GenerationSettings(steps=options.steps, strength=options.strength, seed=options.seed)
        except ValueError as exc:
            self.notice_bar.notify("error", f"Cannot rewrite: {exc}")
            return None
        instruction = options.instruction.strip()
        dialog = AlternativesDialog.start(
            self.editor, self.bridge, settings, count, instruction, options.free_form, self
        )
        if dialog is None:
            self.notice_bar.notify(
                "info", "Nothing to rewrite here: select a paragraph (or put the caret in one)."
            )
        else:  # a pick is kept like a rewrite: the text before it for recovery, the pick in the History
            dialog.aboutToCommit.connect(self.documents.rewrite_about_to_commit)
            dialog.picked.connect(lambda index, d=dialog: self._record_alternative(d, index))
        self.alternatives_dialog = dialog
        return dialog

    def _record_alternative(self, dialog: AlternativesDialog, index: int) -> None:
        result = dialog.result_
        if result is None:
            return
        self.controller.record_commit(
            dialog.span[0],
            dialog.job.request.target,
            dialog.replacements[index],
            result.candidates[index],
            f"alternative {index + 1} of {len(dialog.columns)}",
        )

    def _demo_notice_once(self) -> str:
        """The first rewrite on the demo model says what it is, once (remembered in the settings)."""
        if self.bridge.state != "ready" or not self.bridge.demo_model or self.settings.demo_notice_shown:
            return ""
        self.settings.demo_notice_shown = True
        self.settings.save()
        return DEMO_EXPLAINED

    def _on_model_loaded(self, name: str, device: str) -> None:
        follows = self.bridge.follows_instructions
        self.status.set_model(f"Model: {name} on {device}" + ("" if follows else " (no instructions)"))
        self.rewrite_bar.set_follows_instructions(follows, name)
        self.status.set_demo(self.bridge.demo_model)
        if self.controller.running and (note := self._demo_notice_once()):  # asked for while it loaded
            self.notice_bar.notify("info", note)

    def _fit_options_to_device(self, device: str) -> None:
        """FP8 experts and the compiled step need a CUDA GPU: elsewhere they are off, saying why.
        An option already on stays switchable, so it can be turned off."""
        cuda = device.startswith("cuda")
        served = device.startswith("server ")
        for action, why in (
            (self.act_fp8, "FP8 needs a CUDA GPU"),
            (self.act_compile, "The compiled decoder step needs a CUDA GPU"),
        ):
            if served:  # the server's options are set where it runs (diffedit serve --fp8 / --compile)
                why = f"{why} and is set on the server (diffedit serve)"
            base = self._option_tips.setdefault(action.objectName(), action.toolTip())
            on = action.isChecked()
            action.setEnabled(cuda or on)
            action.setToolTip(base if cuda else f"{why}; the model runs on {device.split()[0]}. {base}")

    def _on_model_failed(self, message: str) -> None:
        self.status.set_demo(False)
        if self.settings.use_server:
            self.status.set_model("Server: not connected")
            self.notice_bar.notify("error", f"The server could not be used: {message}")
            return
        self.status.set_model("Model: unavailable")
        self.notice_bar.notify("error", f"The model could not be loaded: {message}")

    def _on_running_changed(self, running: bool) -> None:
        self.rewrite_bar.set_running(running)
        self.act_stop.setEnabled(running)
        self.act_rewrite.setEnabled(not running)
        if running:
            self.review_bar.hide()

    def escape(self) -> None:
        self.status.clear_run()
        if self.controller.running or self.drafts.running:
            self.stop_run()
        elif self.controller.replaying:
            self.controller.stop_replay()
        elif self.find_bar.isVisible():
            self.find_bar.close_bar()
        elif self.review_bar.isVisible():
            self.controller.keep()
        elif self.notice_bar.isVisible():
            self.notice_bar.hide()

    # -- views -------------------------------------------------------------------------------------
    def _on_contents_change(self, _pos: int, removed: int, added: int) -> None:
        if removed == added and not self.editor.document().isModified():
            return  # formatting only (highlighter, canvas)
        size = self.editor.document().characterCount()
        self.summary.schedule(size)
        self.preview.schedule(size)

    def _on_document_replaced(self) -> None:
        self.controller.clear_history()
        self.history_dock.clear()
        self.status.clear_run()
        self.summary.refresh_now()
        self.preview.refresh()

    def _show_summary(self, summary: Summary) -> None:
        self.status.set_words(summary.words)
        if self.outline_dock.isVisible():
            self.outline_dock.set_headings(summary.headings)

    def _jump_to_offset(self, offset: int) -> None:
        self.editor.center_on(to_utf16(self.editor.exact_text(), offset))

    def _set_preview(self, on: bool) -> None:
        self.settings.show_preview = on
        self.preview.setVisible(on)
        if on:
            self.preview.refresh()

    def _set_sync_scroll(self, on: bool) -> None:
        self.settings.sync_scroll = on

    def _set_dark(self, on: bool) -> None:
        self.settings.theme = "dark" if on else "light"
        self._apply_theme()

    def _apply_theme(self) -> None:
        self.theme = resolve_theme(self.settings.theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        self.editor.set_theme(self.theme)
        self.preview.set_theme(self.theme)
        apply_icons(self.actions(), self.theme)

    def _set_free_form(self, on: bool) -> None:
        self.settings.free_form = on
        self.rewrite_bar.free_form.setChecked(on)
        self.settings.save()  # a switch of how rewrites behave is kept at once, as the model options are

    def _set_wrap(self, on: bool) -> None:
        self.settings.word_wrap = on
        self.editor.set_word_wrap(on)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.documents.display_name}[*] — diffedit")
        self.setWindowModified(self.editor.document().isModified())

    # -- preferences and help ----------------------------------------------------------------------
    def preferences_dialog(self) -> PreferencesDialog:
        s = self.settings
        s.steps, s.strength = self.rewrite_bar.steps.value(), self.rewrite_bar.strength_value()
        dialog = PreferencesDialog(s, self)
        dialog.accepted.connect(lambda: self._take_preferences(dialog))
        return dialog

    def _take_preferences(self, dialog: PreferencesDialog) -> None:
        self._pending_key_change = dialog.key_stored
        try:
            self.apply_settings(dialog.result_settings)
        finally:
            self._pending_key_change = False

    def open_preferences(self) -> None:
        self.preferences_dialog().open()

    def apply_settings(self, new: Settings | None) -> None:
        """Take the Preferences dialog's settings: apply what changed, reload the model if it changed."""
        if new is None:
            return
        old = self.settings
        model_keys = ("model_path", "device", "quantize", "offload", *SERVER_KEYS)
        model_changed = any(getattr(new, k) != getattr(old, k) for k in model_keys)
        model_changed |= bool(self._pending_key_change)  # a key stored in the keyring: connect with it
        for f in dataclasses.fields(Settings):
            setattr(old, f.name, getattr(new, f.name))
        self.editor.set_editor_font(old.font_family, old.font_size)
        self.editor.set_line_width(old.line_width)
        self.rewrite_bar.set_values(old.steps, old.strength)
        self.documents.autosaver.set_delay(old.autosave_delay_s)
        self._apply_theme()
        self.act_dark.blockSignals(True)
        self.act_dark.setChecked(self.theme.name == "dark")
        self.act_dark.blockSignals(False)
        self.act_free_form.setChecked(old.free_form)
        old.save()
        if model_changed:
            self.model.reload()

    def open_models(self) -> ModelsDialog:
        dialog = ModelsDialog(self.settings, self.model, self)
        dialog.open()
        return dialog

    def show_shortcuts(self) -> QDialog:
        extra = [("Stop a rewrite, close a bar", "Esc")]
        dialog = shortcuts_dialog(self.actions(), extra, self)
        dialog.open()
        return dialog

    def show_about(self) -> QMessageBox:
        box = about_box(self.bridge.model_name if self.bridge.state == "ready" else "", self)
        box.open()
        return box

    # -- files -------------------------------------------------------------------------------------
    def _restore_in_new_window(self, entry: RecoveryEntry) -> None:
        other = MainWindow(self.settings, autoload_model=False)
        self._restored_windows.append(other)
        other.show()
        other.documents.restore(entry)

    # -- closing -----------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.documents.confirm_discard():
            event.ignore()
            return
        self.documents.close()
        self.controller.stop(quiet=True)
        s = self.settings
        s.steps, s.strength = self.rewrite_bar.steps.value(), self.rewrite_bar.strength_value()
        s.show_outline = self.outline_dock.isVisible()
        s.show_history = self.history_dock.isVisible()
        s.window_geometry = bytes(self.saveGeometry().toHex().data()).decode()
        s.save()
        self.bridge.shutdown()
        event.accept()
