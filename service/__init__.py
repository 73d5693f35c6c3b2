"""The ``nas`` REST service: a FastAPI app that queues searches, and workers that run them.

``service.main:app`` is the ASGI app (``service.main.create_app(settings)`` builds one);
``service.worker.Worker`` takes queued searches from the service database and runs them with
the same library function as the CLI (:func:`nas.search.run_search`).
"""

from __future__ import annotations

__all__: list[str] = []
