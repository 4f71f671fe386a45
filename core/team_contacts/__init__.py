"""A team's contacts and accounts: saved, filtered, owned, in lists, exported (issue 17).

models: the typed inputs/outputs; filters: the SQL of a filter and the keyset cursor; service:
finding, showing, saving, assigning; accounts: the team's accounts (companies) and their owners;
lists: static lists; export: CSV export charged net-new; rules: who may reassign; owners: who gets a
contact's notices."""
