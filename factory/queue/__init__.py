"""Scale-out: build jobs on a PostgreSQL job queue (Procrastinate), taken by `factory worker` processes.

`factory build` needs nothing running; this package is the optional layer above it. `submit` validates a template
locally, packs it into a content-addressed bundle stored where workers read it (PostgreSQL large objects, or an
S3 bucket), and defers a job on the queue its sources need. A worker takes only jobs its host can run, runs
`factory build` itself on the unpacked bundle (the same code path, in a child process it can stop), streams the
build's events into the database and uploads the artifacts and a manifest.

Modules: db (connection, schema, the Procrastinate app), blobs (the artifact/bundle store), bundle (packing),
routing (which queue a template needs, which queues a host serves), submit, runner (one job on a worker),
worker (the resilient worker loop, stalled-job recovery), jobs (list/show/cancel/logs/retry).
"""
