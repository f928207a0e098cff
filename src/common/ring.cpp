// Ring is header-only; this file keeps the common library non-empty.
