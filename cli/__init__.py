"""The kerasdl command line (Click). Thin: parse, validate, call one library function, print."""
