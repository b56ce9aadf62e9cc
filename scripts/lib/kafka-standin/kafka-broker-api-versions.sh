#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What the official image's script of this name runs (the healthcheck of
# compose/docker-compose.yml), with a small client JVM.
exec java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  -Dlog4j.configuration=file:/opt/kafka/tools-log4j.properties -cp "/opt/kafka/libs/*" \
  kafka.admin.BrokerApiVersionsCommand "$@"
