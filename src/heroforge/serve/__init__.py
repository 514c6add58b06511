"""`heroforge serve`: a web page on the manager root, to look at training instead of reading it.

    app.py       create_app: the FastAPI app (JSON API, pages, static files)
    security.py  who may connect (token, Host, Origin) and which paths a request may name
    runs.py      a job's run folder read for the pages: which one, sample grids, snapshots
    stats.py     its stats.jsonl as the plots need it, read incrementally, answers cached
    models.py    loaded generators (cached) and the pictures the explorer asks for
    review.py    a prepared folder's manifest and the overrides file `prepare` honours
    api_*.py     the routes, one module per page
    static/      the pages: plain HTML, JS and CSS (no build step, nothing from the network)

Only the standard library and FastAPI are imported here on start-up; torch loads the first
time the explorer draws a picture.
"""
