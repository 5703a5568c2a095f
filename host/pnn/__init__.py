"""pnn: physical neural networks trained with physics-aware training (PAT)."""

__version__ = "0.1.0"
