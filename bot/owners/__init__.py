"""What we hold about owners: units, arrears less payments, the importers, identity lookups and ownership changes."""
