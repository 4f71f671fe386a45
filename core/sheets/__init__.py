"""The Google Sheets add-on's core: selections read, jobs run on the workers, results written back."""
