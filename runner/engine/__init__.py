"""The embedded batch engine: the seed's job model on one machine.

``service`` is the job API (create, describe, list, update priority/status)
over SQLite; ``scheduler`` moves jobs through their statuses and shares the
execution slots by priority; ``executor`` runs the tasks of Active jobs on
worker threads; ``manifests`` reads CSV, inventory and generated manifests;
``operations`` applies one operation to one object through an object store
(``stores``); ``reports`` writes completion reports in S3's layout;
``worker`` ties them together into the loop behind ``batchctl engine run``.
"""
