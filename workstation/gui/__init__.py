"""The workstation window (PySide6 + pyqtgraph): thin views over the Qt-free core.

Only this subpackage imports Qt. ``app.main`` starts the window; ``main_window.MainWindow`` is the window;
``workers`` runs file loading and analysis in a thread pool; ``viewer``, ``overlays``, ``calipers``, ``strip``
and ``panel`` are its parts; ``settings`` keeps per-user settings in the data folder.
"""
