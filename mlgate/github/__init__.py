"""Everything mlgate does on GitHub, through PyGithub, one module per job.

- :mod:`~mlgate.github.client`: :func:`~mlgate.github.client.connect`, the repository handle
  :class:`~mlgate.github.client.GitHubRepo` that every other module takes first, and the errors.
- :mod:`~mlgate.github.comments`: the sticky pull-request comment.
- :mod:`~mlgate.github.branch_store`: files committed to a branch (hosted figures, the stats cache).
- :mod:`~mlgate.github.pulls`: the promotion pull request and the default branch.

Every GitHub failure leaves this package as :class:`~mlgate.github.client.GitHubPermissionError`
(the token may not do it; the message names the ``permissions:`` entry that fixes it) or
:class:`~mlgate.github.client.GitHubError` (anything else, unreachable server and exhausted retries
included). Neither ever contains the token. Nothing is re-exported here: importing one module
costs only what it uses.
"""
