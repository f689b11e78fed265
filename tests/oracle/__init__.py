"""The real musl loader as a test oracle: Debian's extracted loaders, run under a controlled /etc."""
