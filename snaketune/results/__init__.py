"""Layer 5, from trial records to answers: the cv_results_ leaderboard (`aggregate`,
`adaptive` for Hyperband columns), plots (`plots`), report pages (`report`), live progress
(`status`)."""
