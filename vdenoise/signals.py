"""Whether SIGINT or SIGTERM has arrived, for the places that must not finish a run after one.

The console script's handler (`entry.py`) sets `received` and raises KeyboardInterrupt. Python
prints and drops an exception raised inside a destructor or a garbage-collector callback, so a
signal that lands there would be lost and the run would go on to write its output; `check`
raises it again at the next frame and before an output is put in place.
"""

received = False


def check() -> None:
    """Raise KeyboardInterrupt if a signal has arrived."""
    if received:
        raise KeyboardInterrupt
