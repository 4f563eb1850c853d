"""rasbot: the release server of the RasPlex distribution."""

__version__ = "0.1.0"
