"""The one exception type for mistakes in what a user gave codegym.

Every command of the ``codegym`` CLI catches :class:`UsageError` (and the input errors that
subclass it) and prints one line on stderr, ``codegym: error: <message>``, with exit status 2;
a traceback appears only with ``--debug``. Library code raises it (or a subclass) for bad
input: the message names the input, what was wrong and what to do.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: a missing file, an unknown name, a malformed config.

    A ``ValueError`` so that code catching ``ValueError`` keeps working. The message must say
    what was wrong and what to do, e.g. ``unknown model 'tinny': give "tiny", a local folder
    saved with save_pretrained, or a Hugging Face hub name``.
    """
