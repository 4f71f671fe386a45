"""CRM sync: a team's CRM contacts become its contacts, and what Tributary knows goes back to the CRM."""
