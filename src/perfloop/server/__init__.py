"""perfloop's team server: an HTTP API that runners upload runs to, backed by one store.

Build the ASGI application with :func:`perfloop.server.app.create_app`; ``perfloop serve``
runs it with uvicorn. This package imports FastAPI only in :mod:`perfloop.server.app`, so the
upload client (:mod:`perfloop.server.client`) and the CLI load without it.
"""
