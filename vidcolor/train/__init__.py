"""Training the networks on the user's own colour photos and videos."""
