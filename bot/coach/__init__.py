"""The collector coach: what an owner means, what to say, on what grounds, what next; and practice (话术演练)."""
