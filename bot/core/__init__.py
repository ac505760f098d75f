"""The pure core: parsing, grouping, routing. No I/O, no clock reads, no vendor SDKs."""
