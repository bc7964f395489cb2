"""``afos serve``: every run under a results root, live in a browser and over a JSON API, read-only.

The top of the library's layering: it reads what the lower layers wrote and never writes into a run folder.
It may import every layer below it (records, storage, search and grid results, reporting, runs' listing);
only :mod:`afos.cli` imports it, inside the ``serve`` command, so that no other command pays for the web
stack.

* :mod:`~afos.app.folders`: which run folders exist (found again on every request) and when one changed;
* :mod:`~afos.app.search_view` and :mod:`~afos.app.grid_view`: one run read into frozen records, cached
  until its files change;
* :mod:`~afos.app.function_view`: one function's facts, values, exports and the runs that trained it;
* :mod:`~afos.app.api` (JSON under ``/api/``) and :mod:`~afos.app.pages` (HTML): the routes;
* :mod:`~afos.app.server`: the application, its security rules, and the server that runs it.
"""
