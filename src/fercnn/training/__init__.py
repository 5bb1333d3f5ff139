"""Training: FER-2013 in, trained networks and their ONNX export out. Everything here runs on
torch (the ``train`` extra).

``loop`` reads top to bottom (set-up, epochs, validation, checkpoints, a time budget);
``config`` is the plain dataclass a YAML file fills; ``schedule``, ``augment``, ``distill``,
``distributed``, ``allocator``, ``checkpoint`` and ``device`` each do one job for it;
``evaluate`` scores checkpoints, ``export`` turns them into the ONNX files that recognition
runs, and ``report`` trains and compares several configs. ``saliency`` explains checkpoints
(Grad-CAM); ``tune`` (with ``space`` and ``study_report``) searches settings with Optuna.
"""
