//! Property tests of the replica's merge laws (filled in by the property-test work).
