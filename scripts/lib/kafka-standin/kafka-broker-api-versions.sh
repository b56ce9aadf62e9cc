#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What the official image's script of this name runs (the healthcheck of
# compose/docker-compose.yml). Like the official kafka-run-class.sh it takes
# the container's KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS (defaults
# -Xmx256M and Kafka's G1 flags): a healthcheck that does not set its own
# heap gets the broker's.
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true} \
  -Dlog4j.configuration=file:/opt/kafka/tools-log4j.properties -cp "/opt/kafka/libs/*" \
  kafka.admin.BrokerApiVersionsCommand "$@"
