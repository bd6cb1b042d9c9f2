"""Our C kernels and the doors to them (the C extension, the BLAS, malloc), knowing nothing
of Whisper. Importing this package does nothing."""
