"""One frame at a time: preprocess -> encoder -> descriptor ring -> SeqGeM -> matcher, and the run statistics."""
