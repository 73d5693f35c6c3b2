-- Run once by the postgres container on an empty data volume (docker-entrypoint-initdb.d):
-- POSTGRES_DB (nas) holds the service's tables; Optuna and MLflow get a database each, since
-- both keep an `alembic_version` table of their own.
CREATE DATABASE optuna;
CREATE DATABASE mlflow;
