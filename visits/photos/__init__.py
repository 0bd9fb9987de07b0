"""Photos from the field: `images` (decoding and re-encoding with Pillow, the limits), `service`
(receiving, storing and processing), `api` (the endpoints)."""
