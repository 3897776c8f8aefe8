"""Stand-ins for every external system, speaking the real protocol on loopback and holding the state tests assert on."""
