"""``fercnn serve``: recognition over HTTP (FastAPI) and a page to use it from a browser.

One request's way: ``limits`` (a free slot, a body within its size and time) -> ``upload``
(the image's bytes out of a multipart or raw body, in memory) -> ``pipeline`` (decoded with a
pixel limit, recognised off the event loop by the ``catalog``'s cached Recognizer) ->
the same JSON per face as ``fercnn predict --json``. ``app`` assembles the routes
(``routes``), the error bodies (``errors``) and the page (``static/``); ``command`` is the
CLI's side, ``protocol`` uvicorn's HTTP/1.1 with a deadline for request headers.

Like the recognition layer, this package never imports torch; FastAPI and uvicorn come with
the ``serve`` extra and are imported only here.
"""
