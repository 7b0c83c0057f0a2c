"""Crash-detection model: contract, data, network, export, registry, runtime.

Gateway code imports ``contract``, ``registry``, ``runtime`` and
``evaluation`` only (NumPy and LiteRT); ``network``, ``train`` and ``export``
import TensorFlow inside their functions and run on R&D machines.
"""
