#!/usr/bin/env bash
# Creates, in the AWS emulator, what config/compose/esmd.toml reads: the SQS queue `jobs`, the
# Kinesis stream `clicks` and the DynamoDB table `orders` with a stream. docker-compose.yml runs
# it once (service init-aws, image amazon/aws-cli) before esmd and the seeders start.
#
# Idempotent: a second `docker compose up` finds moto still holding them and leaves them be.
# The endpoint, region and dummy credentials come from the environment (AWS_ENDPOINT_URL,
# AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
set -euo pipefail

# Passed on every call rather than left to the CLI's own AWS_ENDPOINT_URL support, which older
# CLIs lack: against AWS itself by mistake, these calls would create real resources.
aws() { command aws --endpoint-url "${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL to the emulator}" "$@"; }

# CreateQueue with the same attributes returns the existing queue.
aws sqs create-queue --queue-name jobs --output text

if ! aws kinesis describe-stream-summary --stream-name clicks >/dev/null 2>&1; then
  aws kinesis create-stream --stream-name clicks --shard-count 2
fi
aws kinesis wait stream-exists --stream-name clicks

if ! aws dynamodb describe-table --table-name orders >/dev/null 2>&1; then
  # A sort key makes every seeded record its own item, so each one is an INSERT in the stream.
  aws dynamodb create-table --table-name orders \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=n,AttributeType=N \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=n,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST \
    --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES \
    --output text --query TableDescription.LatestStreamArn
fi
aws dynamodb wait table-exists --table-name orders
echo "init-aws: queue jobs, stream clicks, table orders ready"
