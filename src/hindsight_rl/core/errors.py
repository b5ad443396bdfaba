"""The one base class of every error a user can fix from its message alone.

The ``kedro run`` command of this project (``hindsight_rl.cli``) prints such an error as one
paragraph and exits non-zero, without a traceback: the message names the key, file or step
and what was expected, which is all a scheduler's log needs to show.
"""


class HindsightRLError(Exception):
    """Bad input or a failed run, explained in the message."""
