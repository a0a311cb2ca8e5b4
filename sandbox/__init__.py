"""Trading Signal Sandbox: honest tests of sequence models as trading-signal generators."""

__version__ = "0.1.0"
