"""Search over a map's place descriptors: the index kinds (hnsw, hnsw-pca), their structure check, exact and ANN matchers."""
