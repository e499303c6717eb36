"""The scheduler benchmark: seeded scenarios, Ray v1's scheduler as a baseline, an LP lower bound."""
