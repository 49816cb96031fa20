"""The engine's base layer: file formats and metadata, crash-safe file helpers, checkpoint files, and where
things live on disk. Every other layer may import it; it imports nothing else from the engine (only the
package's ``__version__``)."""
