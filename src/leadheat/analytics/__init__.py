"""Analytics on the team's own history: conversion by temperature, age, speed of first touch,
source, grade and rep with honest intervals; the funnel and SLA per rep; heat over time;
playbook backtests and half-life sweeps; and the expected yield of a campaign list."""
