"""The field sync with the tablets (../shared/SYNC.md): `engine` (push, pull, check, devices),
`api` (its endpoints), `conflicts` and `conflicts_api` (edits that met a newer version)."""
