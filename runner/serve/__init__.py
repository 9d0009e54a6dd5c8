"""The engine served over HTTP in the S3 Control job API's shapes (`batchctl engine serve`)."""
