"""The S3 client for storage nodes: the endpoint guard (SSRF), a NodeClient for the API and the indexer,
and the lean pooled HTTP/1.1 client with zero-copy bodies the proxy uses on every request."""
