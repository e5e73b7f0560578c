"""The main window: builds the rooms' parts and wires them; the work is done in the rooms.

editing/  the editor, find bar, preview, outline and word count, themes
files/    ``DocumentController``: path, encoding, read-only, disk watcher, saves, autosave, recovery
rewrite/  ``RewriteController`` and its canvas, bars, history dock, model picker, status
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QSplitter, QToolBar, QVBoxLayout, QWidget

from diffedit.document.outline import Summary
from diffedit.document.recovery import RecoveryEntry
from diffedit.document.textpos import to_utf16
from diffedit.resources import resources_dir
from diffedit.settings import Settings
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.editing.find_bar import FindBar
from diffedit.ui.editing.outline_dock import OutlineDock
from diffedit.ui.editing.preview import PreviewPane
from diffedit.ui.editing.summary import SummaryRefresher
from diffedit.ui.editing.theme import THEMES, apply_theme
from diffedit.ui.files.document_controller import DocumentController
from diffedit.ui.notice_bar import NoticeBar
from diffedit.ui.rewrite.bars import ReviewBar, RewriteBar
from diffedit.ui.rewrite.controller import RewriteController, RunOptions
from diffedit.ui.rewrite.history_dock import HistoryDock
from diffedit.ui.rewrite.model_picker import ModelPicker
from diffedit.ui.rewrite.status import StatusPanel
from diffedit.worker import EngineBridge

RESOURCES = resources_dir()
WELCOME_FALLBACK = "# Welcome to diffedit\n\nSelect a paragraph and press Ctrl+R to rewrite it in place.\n"
Shortcut = QKeySequence | QKeySequence.StandardKey | str


def welcome_text() -> str:
    try:
        return (RESOURCES / "welcome.md").read_text(encoding="utf-8")
    except OSError:
        return WELCOME_FALLBACK


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings | None = None,
        bridge: EngineBridge | None = None,
        autoload_model: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings.load()
        self.theme = THEMES[self.settings.theme]
        self.bridge = bridge or EngineBridge(parent=self)
        self._restored_windows: list[MainWindow] = []  # opened by a recovery restore; kept alive here

        # editing
        self.editor = MarkdownEditor(self, self.theme)
        self.editor.set_editor_font(self.settings.font_family, self.settings.font_size)
        self.editor.set_word_wrap(self.settings.word_wrap)
        self.find_bar = FindBar(self.editor, self)
        self.preview = PreviewPane(
            self.editor.toPlainText, self.theme, self, anchor=lambda: self.editor.textCursor().position()
        )
        self.outline_dock = OutlineDock(self)
        self.summary = SummaryRefresher(self.editor.toPlainText, self.outline_dock.isVisible, self)
        # rewrite
        self.rewrite_bar = RewriteBar(self)
        self.rewrite_bar.set_values(self.settings.steps, self.settings.strength)
        self.review_bar = ReviewBar(self)
        self.history_dock = HistoryDock(self)
        self.status = StatusPanel(self.statusBar())
        self.controller = RewriteController(self.editor, self.bridge, self)
        self.model = ModelPicker(self.settings, self.bridge, self)
        # files
        self.documents = DocumentController(self.editor, self.settings, self)
        self.notice_bar = NoticeBar(self)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.editor)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        central = QWidget(self)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        for w in (self.find_bar, self.splitter, self.notice_bar, self.review_bar, self.rewrite_bar):
            lay.addWidget(w, 1 if w is self.splitter else 0)
        self.setCentralWidget(central)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.outline_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
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
        self.act_stop = self._action("&Stop", self.controller.stop, None, "actStop")
        self.act_stop.setEnabled(False)
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
        self.act_dark.setChecked(self.settings.theme == "dark")
        self.act_wrap.setChecked(self.settings.word_wrap)
        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.setContext(Qt.ShortcutContext.WindowShortcut)
        esc.activated.connect(self.escape)

        bar = self.menuBar()
        menu = bar.addMenu("&File")
        menu.addActions([self.act_new, self.act_open])
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
        menu = bar.addMenu("&Rewrite")
        menu.addActions([self.act_rewrite, self.act_instruct, self.act_stop])
        menu.addSeparator()
        menu.addActions([self.act_choose_model, self.act_demo_model])
        menu.addSeparator()
        menu.addActions([self.act_fp8, self.act_compile])
        menu = bar.addMenu("&View")
        menu.addActions([self.act_preview, self.act_outline, self.act_history, self.act_dark, self.act_wrap])

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_rewrite, self.act_stop])
        tb.addSeparator()
        tb.addAction(self.act_preview)
        self.addToolBar(tb)
        self.editor.context_actions = [self.act_rewrite, self.act_instruct]

    def _connect(self) -> None:
        doc = self.editor.document()
        doc.contentsChange.connect(self._on_contents_change)
        doc.modificationChanged.connect(lambda _m: self._update_title())
        self.editor.cursorPositionChanged.connect(
            lambda: self.preview.follow(self.editor.textCursor().position())
        )
        self.outline_dock.headingActivated.connect(self._jump_to_offset)
        self.summary.ready.connect(self._show_summary)
        # rewrite
        c = self.controller
        self.history_dock.entrySelected.connect(c.jump_to)
        self.history_dock.replayRequested.connect(c.replay)
        self.rewrite_bar.rewriteRequested.connect(self.rewrite)
        self.rewrite_bar.stopRequested.connect(c.stop)
        self.review_bar.keepRequested.connect(c.keep)
        self.review_bar.undoRequested.connect(c.undo)
        self.review_bar.retryRequested.connect(c.try_again)
        c.notice.connect(self.notice_bar.notify)
        c.progress.connect(self.status.set_progress)
        c.runningChanged.connect(self._on_running_changed)
        c.committed.connect(self.history_dock.add_entry)
        c.reviewOffered.connect(self.review_bar.offer)
        c.reviewClosed.connect(self.review_bar.hide)
        self.model.aboutToReload.connect(lambda: c.stop(quiet=True))
        self.model.status.connect(self.status.set_model)
        b = self.bridge
        b.modelLoading.connect(self.status.set_model)
        b.modelLoaded.connect(lambda name, dev: self.status.set_model(f"Model: {name} on {dev}"))
        b.modelFailed.connect(self._on_model_failed)
        # files
        d = self.documents
        d.notice.connect(self.notice_bar.notify)
        d.aboutToReplace.connect(c.quiet)
        d.replaced.connect(self._on_document_replaced)
        d.pathChanged.connect(self._update_title)
        d.restoreElsewhere.connect(self._restore_in_new_window)
        c.committed.connect(lambda _entry: d.save_recovery_now())  # a commit is autosaved at once

    # -- rewrite -----------------------------------------------------------------------------------
    def run_options(self) -> RunOptions:
        bar = self.rewrite_bar
        return RunOptions(
            bar.instruction.text(), bar.strength_value(), bar.steps.value(), free_form=self.settings.free_form
        )

    def rewrite(self) -> bool:
        self.model.load()  # a window started without a model loads it on first use
        return self.controller.start(self.run_options())

    def _on_model_failed(self, message: str) -> None:
        self.status.set_model("Model: unavailable")
        self.notice_bar.notify("error", f"The model could not be loaded: {message}")

    def _on_running_changed(self, running: bool) -> None:
        self.rewrite_bar.set_running(running)
        self.act_stop.setEnabled(running)
        self.act_rewrite.setEnabled(not running)
        if running:
            self.review_bar.hide()

    def escape(self) -> None:
        if self.controller.running:
            self.controller.stop()
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
        self.summary.refresh_now()
        self.preview.refresh()

    def _show_summary(self, summary: Summary) -> None:
        self.status.set_words(summary.words)
        if self.outline_dock.isVisible():
            self.outline_dock.set_headings(summary.headings)

    def _jump_to_offset(self, offset: int) -> None:
        self.editor.center_on(to_utf16(self.editor.toPlainText(), offset))

    def _set_preview(self, on: bool) -> None:
        self.settings.show_preview = on
        self.preview.setVisible(on)
        if on:
            self.preview.refresh()

    def _set_dark(self, on: bool) -> None:
        self.settings.theme = "dark" if on else "light"
        self.theme = THEMES[self.settings.theme]
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme)
        self.editor.set_theme(self.theme)
        self.preview.set_theme(self.theme)

    def _set_wrap(self, on: bool) -> None:
        self.settings.word_wrap = on
        self.editor.set_word_wrap(on)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.documents.display_name}[*] — diffedit")
        self.setWindowModified(self.editor.document().isModified())

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
