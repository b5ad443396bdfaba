"""The one base class of every error a user can fix from its message alone.

The ``kedro run`` command of this project (``hindsight_rl.cli``) prints such an error as one
paragraph and exits non-zero, without a traceback: the message names the key, file or step
and what was expected, which is all a scheduler's log needs to show.
"""


class HindsightRLError(Exception):
    """Bad input or a failed run, explained in the message."""


def project_error_in(error: BaseException | None) -> HindsightRLError | None:
    """The :class:`HindsightRLError` behind ``error``, if any: itself, or the first one along
    its chain of causes (Kedro wraps dataset errors in its own ``DatasetError``)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, HindsightRLError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
