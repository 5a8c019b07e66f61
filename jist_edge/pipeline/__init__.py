"""The localizer: frames -> encoder -> descriptor ring -> SeqGeM -> search -> route filter, the result types and run statistics."""
