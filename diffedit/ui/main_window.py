"""The main window: wires the editor, bars, docks, file actions and the regeneration controller.

File IO goes through two small methods, ``_load_path`` and ``_save_to``, so autosave, recovery and
conflict handling can hook in there.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.outline import Summary, scan
from diffedit.document.outline import run as run_scan
from diffedit.document.storage import LoadedDocument, StorageError, write_document
from diffedit.document.textpos import to_utf16
from diffedit.resources import resources_dir
from diffedit.settings import Settings
from diffedit.ui.bars import NoticeBar, RegenerateBar, ReviewBar
from diffedit.ui.docks import HistoryDock, OutlineDock
from diffedit.ui.editor import MarkdownEditor
from diffedit.ui.find_bar import FindBar
from diffedit.ui.model_picker import choose_model_folder
from diffedit.ui.preview import PreviewPane
from diffedit.ui.regenerate import RegenerationController, RunOptions
from diffedit.ui.safekeeping import SafeKeeper
from diffedit.ui.status import StatusPanel
from diffedit.ui.theme import THEMES, apply_theme
from diffedit.worker import EngineBridge, ModelSpec

RESOURCES = resources_dir()
WELCOME_FALLBACK = "# Welcome to diffedit\n\nSelect a paragraph and press Ctrl+R to rewrite it in place.\n"
Shortcut = QKeySequence | QKeySequence.StandardKey | str
MD_FILTER = "Markdown (*.md *.markdown *.mdown *.txt);;All files (*)"


def welcome_text() -> str:
    try:
        return (RESOURCES / "welcome.md").read_text(encoding="utf-8")
    except OSError:
        return WELCOME_FALLBACK


REFRESH_SLICE_S = 0.004  # word count and outline work per turn of the event loop


def refresh_delay_ms(size: int) -> int:
    """Outline and word count wait for a pause in typing; longer pauses for long documents."""
    return 300 if size < 200_000 else 900


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
        self.path: Path | None = None
        self.loaded: LoadedDocument | None = None
        self.bridge = bridge or EngineBridge(parent=self)

        self.editor = MarkdownEditor(self, self.theme)
        self.editor.set_editor_font(self.settings.font_family, self.settings.font_size)
        self.editor.set_word_wrap(self.settings.word_wrap)
        self.find_bar = FindBar(self.editor, self)
        self.preview = PreviewPane(
            self.editor.toPlainText, self.theme, self, anchor=lambda: self.editor.textCursor().position()
        )
        self.editor.cursorPositionChanged.connect(
            lambda: self.preview.follow(self.editor.textCursor().position())
        )
        self.regen_bar = RegenerateBar(self)
        self.regen_bar.set_values(self.settings.steps, self.settings.strength)
        self.review_bar = ReviewBar(self)
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
        for w in (self.find_bar, self.splitter, self.notice_bar, self.review_bar, self.regen_bar):
            lay.addWidget(w, 1 if w is self.splitter else 0)
        self.setCentralWidget(central)

        self.outline_dock = OutlineDock(self)
        self.history_dock = HistoryDock(self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.outline_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        self.status = StatusPanel(self.statusBar())

        self.controller = RegenerationController(self.editor, self.bridge, self)
        self._refresh_timer = QTimer(self, singleShot=True)
        self._refresh_timer.timeout.connect(self.start_refresh)
        self._refresh_job: Generator[None, None, Summary] | None = None
        self._refresh_slice_timer = QTimer(self, singleShot=True, interval=0)
        self._refresh_slice_timer.timeout.connect(self._refresh_slice)
        self._build_actions()
        self._connect()

        self.preview.setVisible(self.settings.show_preview)
        self.outline_dock.setVisible(self.settings.show_outline)
        self.history_dock.setVisible(self.settings.show_history)
        self.resize(1100, 750)
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(self.settings.window_geometry.encode()))
        self.keeper = SafeKeeper(self)  # autosave, crash recovery, file watching, save conflicts, encodings
        self.new_document(welcome=True)
        if autoload_model:
            self.load_model()

    # -- construction ------------------------------------------------------------------------------
    def _action(
        self, text: str, slot: Any, shortcut: Shortcut | None = None, name: str = "", checkable: bool = False
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
        self.act_new = self._action("&New", lambda: self.new_document(), K.New, "actNew")
        self.act_open = self._action("&Open…", lambda: self.open_dialog(), K.Open, "actOpen")
        self.act_save = self._action("&Save", lambda: self.save(), K.Save, "actSave")
        self.act_save_as = self._action("Save &As…", lambda: self.save_as(), K.SaveAs, "actSaveAs")
        self.act_quit = self._action("&Quit", self.close, K.Quit, "actQuit")
        self.act_undo = self._action("&Undo", self.editor.undo, K.Undo, "actUndo")
        self.act_redo = self._action("&Redo", self.editor.redo, "Ctrl+Shift+Z", "actRedo")
        self.act_find = self._action("&Find…", lambda: self.find_bar.open(False), K.Find, "actFind")
        self.act_replace = self._action("&Replace…", lambda: self.find_bar.open(True), "Ctrl+H", "actReplace")
        self.act_find_next = self._action("Find &Next", self.find_bar.find_next, K.FindNext, "actFindNext")
        self.act_find_prev = self._action(
            "Find &Previous", self.find_bar.find_previous, K.FindPrevious, "actFindPrev"
        )
        self.act_regenerate = self._action(
            "&Regenerate Selection", self.regenerate, "Ctrl+R", "actRegenerate"
        )
        self.act_regenerate.setToolTip("Rewrite the selected blocks in place (Ctrl+R)")
        self.act_instruct = self._action(
            "Regenerate with &Instruction…", self.regen_bar.focus_instruction, "Ctrl+I", "actInstruct"
        )
        self.act_stop = self._action("&Stop", self.controller.stop, None, "actStop")
        self.act_choose_model = self._action(
            "Choose &Model Folder…", self.choose_model, None, "actChooseModel"
        )
        self.act_demo_model = self._action(
            "Use the &Bundled Demo Model", self.use_demo_model, None, "actDemoModel"
        )
        self.act_fp8 = self._action(
            "&FP8 Experts (Half the Memory)",
            lambda on: self._set_model_option("fp8", on),
            None,
            "actFp8",
            True,
        )
        self.act_fp8.setToolTip(
            "Load the model's MoE experts in FP8: half their memory, fastest on Hopper GPUs; "
            "changes the output slightly"
        )
        self.act_compile = self._action(
            "&Compile the Decoder Step",
            lambda on: self._set_model_option("compile_step", on),
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
        self.act_stop.setEnabled(False)
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
        m = bar.addMenu("&File")
        m.addActions([self.act_new, self.act_open])
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addMenu(self.recent_menu)
        m.addActions([self.act_save, self.act_save_as])
        m.addSeparator()
        m.addAction(self.act_quit)
        m = bar.addMenu("&Edit")
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        m.addActions([self.act_find, self.act_replace, self.act_find_next, self.act_find_prev])
        m = bar.addMenu("&Rewrite")
        m.addActions([self.act_regenerate, self.act_instruct, self.act_stop])
        m.addSeparator()
        m.addActions([self.act_choose_model, self.act_demo_model])
        m.addSeparator()
        m.addActions([self.act_fp8, self.act_compile])
        m = bar.addMenu("&View")
        m.addActions([self.act_preview, self.act_outline, self.act_history, self.act_dark, self.act_wrap])

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_regenerate, self.act_stop])
        tb.addSeparator()
        tb.addAction(self.act_preview)
        self.addToolBar(tb)
        self.editor.context_actions = [self.act_regenerate, self.act_instruct]

    def _connect(self) -> None:
        doc = self.editor.document()
        doc.contentsChange.connect(self._on_contents_change)
        doc.modificationChanged.connect(lambda _m: self._update_title())
        self.outline_dock.headingActivated.connect(self._jump_to_offset)
        self.history_dock.entrySelected.connect(self.controller.jump_to)
        self.history_dock.replayRequested.connect(self.controller.replay)
        self.regen_bar.regenerateRequested.connect(self.regenerate)
        self.regen_bar.stopRequested.connect(self.controller.stop)
        self.review_bar.keepRequested.connect(self.controller.keep)
        self.review_bar.undoRequested.connect(self.controller.undo)
        self.review_bar.retryRequested.connect(self.controller.try_again)
        c = self.controller
        c.notice.connect(self.notice_bar.notify)
        c.progress.connect(self.status.set_progress)
        c.runningChanged.connect(self._on_running_changed)
        c.committed.connect(self.history_dock.add_entry)
        c.reviewOffered.connect(self.review_bar.offer)
        c.reviewClosed.connect(self.review_bar.hide)
        b = self.bridge
        b.modelLoading.connect(lambda msg: self.status.set_model(msg))
        b.modelLoaded.connect(lambda name, dev: self.status.set_model(f"Model: {name} on {dev}"))
        b.modelFailed.connect(self._on_model_failed)

    # -- model and regeneration --------------------------------------------------------------------
    def model_spec(self) -> ModelSpec:
        s = self.settings
        trusted = bool(s.model_path) and s.model_path in s.trusted_code_models
        return ModelSpec(
            s.model_path or None, s.device or None, s.dtype or None, trusted, s.fp8, s.compile_step
        )

    def choose_model(self) -> None:
        if choose_model_folder(self, self.settings):
            self.controller.stop(quiet=True)
            self.status.set_model("Model: loading…")
            self.bridge.switch_model(self.model_spec())

    def use_demo_model(self) -> None:
        self.settings.model_path = ""
        self.settings.save()
        self.controller.stop(quiet=True)
        self.status.set_model("Model: loading…")
        self.bridge.switch_model(self.model_spec())

    def _set_model_option(self, name: str, on: bool) -> None:
        """A model option from the Rewrite menu: kept in the settings, and the model loaded again with it."""
        if getattr(self.settings, name) == on:
            return
        setattr(self.settings, name, on)
        self.settings.save()
        self.controller.stop(quiet=True)
        self.status.set_model("Model: loading…")
        self.bridge.switch_model(self.model_spec())

    def load_model(self) -> None:
        self.status.set_model("Model: loading…")
        self.bridge.load(self.model_spec())

    def _on_model_failed(self, message: str) -> None:
        self.status.set_model("Model: unavailable")
        self.notice_bar.notify("error", f"The model could not be loaded: {message}")

    def run_options(self, seed: int | None = None) -> RunOptions:
        return RunOptions(
            self.regen_bar.instruction.text(),
            self.regen_bar.strength_value(),
            self.regen_bar.steps.value(),
            seed,
        )

    def regenerate(self) -> bool:
        if self.bridge.state == "unloaded":
            self.bridge.load(self.model_spec())
        return self.controller.start(self.run_options())

    def _on_running_changed(self, running: bool) -> None:
        self.regen_bar.set_running(running)
        self.act_stop.setEnabled(running)
        self.act_regenerate.setEnabled(not running)
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
        self._refresh_job = None  # its text is out of date; the timer starts another after the pause
        self._refresh_timer.start(refresh_delay_ms(size))
        self.preview.schedule(size)

    def refresh_views(self) -> None:
        """Word count and outline now, in one go (a new document; ~40 ms per MB)."""
        self._refresh_job = None
        self._show_summary(run_scan(scan(self.editor.toPlainText(), self.outline_dock.isVisible())))

    def start_refresh(self) -> None:
        """Word count and outline after a typing pause: a few ms at a time while the event loop runs."""
        self._refresh_job = scan(self.editor.toPlainText(), self.outline_dock.isVisible())
        self._refresh_slice()

    def _refresh_slice(self) -> None:
        job = self._refresh_job
        if job is None:
            return
        deadline = time.perf_counter() + REFRESH_SLICE_S
        try:
            while time.perf_counter() < deadline:
                next(job)
        except StopIteration as done:
            self._refresh_job = None
            self._show_summary(done.value)
            return
        self._refresh_slice_timer.start()

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
        name = self.path.name if self.path else "Untitled"
        self.setWindowTitle(f"{name}[*] — diffedit")
        self.setWindowModified(self.editor.document().isModified())

    # -- files -------------------------------------------------------------------------------------
    def _set_text(self, text: str, path: Path | None) -> None:
        self.controller.stop(quiet=True)
        self.controller.stop_replay()
        self.controller.close_review()
        self.editor.setPlainText(text)  # a new document: its undo history starts empty
        self.editor.document().setModified(False)
        self.path = path
        self._update_title()
        self.refresh_views()
        self.preview.refresh()
        self.keeper.document_replaced()

    def new_document(self, welcome: bool = False) -> None:
        if not welcome and not self._confirm_discard():
            return
        self.loaded = None
        self._set_text(welcome_text() if welcome else "", None)

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        start = str(self.path.parent) if self.path else ""
        name, _ = QFileDialog.getOpenFileName(self, "Open", start, MD_FILTER)
        if name:
            self.open_path(Path(name))

    def open_path(self, path: Path) -> bool:
        try:
            self._load_path(path)
        except StorageError as exc:
            self.notice_bar.notify("error", f"Could not open: {exc}")
            return False
        return True

    def _load_path(self, path: Path) -> None:
        """Read ``path`` into the editor (raises StorageError)."""
        loaded = self.keeper.read(path)  # asks for an encoding when the file is not UTF-8
        if loaded is None:
            return
        self.loaded = loaded
        self._set_text(loaded.text, path)
        self.settings.add_recent(path)
        self.settings.save()

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._save_checked(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path else "untitled.md"
        name, _ = QFileDialog.getSaveFileName(self, "Save As", start, MD_FILTER)
        return self._save_checked(Path(name)) if name else False

    def _save_checked(self, path: Path) -> bool:
        try:
            self._save_to(path)
        except StorageError as exc:
            self.notice_bar.notify("error", f"Not saved: {exc}")
            return False
        return True

    def _save_to(self, path: Path) -> None:
        """Write the document to ``path`` atomically (raises StorageError); the canvas is never saved."""
        if not self.keeper.before_save(path):  # the file changed on disk: asks; False when saved elsewhere
            return
        like = self.loaded if self.loaded is not None and self.path == path else None
        self.loaded = write_document(path, self.editor.toPlainText(), like)
        self.path = path
        self.editor.document().setModified(False)
        self.keeper.after_save()
        self._update_title()
        self.settings.add_recent(path)
        self.settings.save()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            action = self.recent_menu.addAction(p)
            action.triggered.connect(lambda _c=False, p=p: self._open_recent(Path(p)))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: Path) -> None:
        if self._confirm_discard():
            self.open_path(path)

    def _confirm_discard(self) -> bool:
        """True when there are no unsaved changes or the user agrees to drop them (or saves them)."""
        if not self.editor.document().isModified():
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "The document has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # -- closing -----------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_discard():
            event.ignore()
            return
        self.keeper.window_closing()
        self.controller.stop(quiet=True)
        s = self.settings
        s.steps, s.strength = self.regen_bar.steps.value(), self.regen_bar.strength_value()
        s.show_outline = self.outline_dock.isVisible()
        s.show_history = self.history_dock.isVisible()
        s.window_geometry = bytes(self.saveGeometry().toHex().data()).decode()
        s.save()
        self.bridge.shutdown()
        event.accept()
